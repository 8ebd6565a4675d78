# a lineage tag set by hand
# summary: Reserved Tag Key
# at: tags   = { Fingerprint = "x" }

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  tags   = { Fingerprint = "x" }
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
