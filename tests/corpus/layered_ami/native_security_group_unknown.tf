# builder security group that does not exist
# summary: Unknown Security Group
# at:       security_group_ids = ["sg-0123456789abcdef0"]

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
