# abbreviated commit
# summary: Invalid Commit
# at: commit = "abc1234"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "abc1234"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
