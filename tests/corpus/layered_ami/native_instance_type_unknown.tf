# builder instance type EC2 does not offer
# summary: Unknown Instance Type
# at:       instance_type = "t9.mega"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data     = "#!/bin/sh\nshutdown -h now\n"
      instance_type = "t9.mega"
    }
  }
}
