# parent AMI that does not exist
# summary: Parent AMI Not Found
# at: parent = "ami-0123456789abcdef0"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "ami-0123456789abcdef0"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
