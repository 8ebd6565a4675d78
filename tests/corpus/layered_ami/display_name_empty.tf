# empty display name
# summary: Empty Value
# at: display_name = ""

resource "immutable_layered_ami" "app" {
  layer        = "corpus-app"
  commit       = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent       = "@AMI@"
  display_name = ""
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
