# neither parent nor source
# summary: Missing Parent Or Source
# at: resource "immutable_layered_ami" "app" {

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
