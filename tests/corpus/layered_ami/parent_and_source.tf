# both parent and source
# summary: Conflicting Parent And Source
# at: parent = "@AMI@"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  source {
    owners = ["self"]
    name   = "corpus-base-*"
  }
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
