# build.command for the native builder
# summary: Packer Setting Without Template
# at: command = "packer build"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    command = "packer build"
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
