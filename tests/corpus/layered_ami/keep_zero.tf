# keep 0
# summary: Invalid Retention
# at: keep   = 0

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  keep   = 0
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
