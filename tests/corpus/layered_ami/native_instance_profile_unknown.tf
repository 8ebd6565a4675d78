# builder instance profile that does not exist
# summary: Unknown Instance Profile
# at:       iam_instance_profile = "no-such-profile"

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
