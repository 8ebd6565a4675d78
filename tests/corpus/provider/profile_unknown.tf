# profile that no config file defines
# summary: Unknown Profile
# at: profile = "no-such-profile"

provider "immutable" {
  profile = "no-such-profile"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
