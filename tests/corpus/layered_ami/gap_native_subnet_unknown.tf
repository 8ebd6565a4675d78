# builder subnet that does not exist
# gap: build.native.subnet_id is not looked up at plan

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
