# a tag key with AWS's reserved prefix
# summary: Reserved Tag Key
# at: tags   = { "aws:team" = "web" }

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  tags   = { "aws:team" = "web" }
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
