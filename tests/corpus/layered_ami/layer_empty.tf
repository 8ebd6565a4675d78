# empty layer id
# summary: Empty Value
# at: layer  = ""

resource "immutable_layered_ami" "app" {
  layer  = ""
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
