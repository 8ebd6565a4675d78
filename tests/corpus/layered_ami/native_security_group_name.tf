# builder security group given by name where ids are expected
# summary: Security Group Id Expected
# at:       security_group_ids = ["web-sg"]

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
      security_group_ids = ["web-sg"]
    }
  }
}
