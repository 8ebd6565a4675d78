# empty source name pattern
# summary: Empty Value
# at: name   = ""

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  source {
    owners = ["self"]
    name   = ""
  }
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
