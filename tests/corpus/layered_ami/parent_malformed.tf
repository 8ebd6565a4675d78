# parent that is not an AMI id
# summary: Invalid AMI Id
# at: parent = "image-1"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "image-1"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
