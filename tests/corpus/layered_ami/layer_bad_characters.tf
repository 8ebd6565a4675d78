# layer id that cannot prefix an AMI name
# summary: Invalid Layer Id
# at: layer  = "web#1"

resource "immutable_layered_ami" "app" {
  layer  = "web#1"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
