# builder subnet that does not exist
# summary: Unknown Subnet
# at:       subnet_id = "subnet-0123456789abcdef0"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
      subnet_id = "subnet-0123456789abcdef0"
    }
  }
}
