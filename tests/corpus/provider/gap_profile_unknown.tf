# profile that no config file defines
# gap: an unknown profile is not an error while environment credentials exist

provider "immutable" {
  profile = "no-such-profile"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
