# source with no owner
# summary: Empty List
# at: owners = []

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  source {
    owners = []
    name   = "corpus-base-*"
  }
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
