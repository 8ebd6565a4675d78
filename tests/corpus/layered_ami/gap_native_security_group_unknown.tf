# builder security group that does not exist
# gap: build.native.security_group_ids are not looked up at plan

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
      security_group_ids = ["sg-0123456789abcdef0"]
    }
  }
}
