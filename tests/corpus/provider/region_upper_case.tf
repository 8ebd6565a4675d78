# region in upper case
# summary: Invalid Region
# at: region = "EU-WEST-1"

provider "immutable" {
  region = "EU-WEST-1"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
