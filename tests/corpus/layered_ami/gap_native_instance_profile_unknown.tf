# builder instance profile that does not exist
# gap: build.native.iam_instance_profile is not looked up at plan

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
      iam_instance_profile = "no-such-profile"
    }
  }
}
