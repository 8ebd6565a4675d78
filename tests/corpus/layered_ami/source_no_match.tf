# source filter no AMI matches
# summary: No Source AMI
# at: resource "immutable_layered_ami" "app" {

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  source {
    owners = ["self"]
    name   = "no-such-image-*"
  }
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
