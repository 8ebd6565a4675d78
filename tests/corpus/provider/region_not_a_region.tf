# region that is not an AWS region name
# summary: Invalid Region
# at: region = "nowhere"

provider "immutable" {
  region = "nowhere"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
