# connect timeout without a unit
# summary: Invalid Duration
# at: connect_timeout = "10"

provider "immutable" {
  connect_timeout = "10"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
