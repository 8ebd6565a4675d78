# well-formed region that AWS does not have
# summary: Unknown Region
# at: region = "eu-nowhere-9"

provider "immutable" {
  region = "eu-nowhere-9"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
