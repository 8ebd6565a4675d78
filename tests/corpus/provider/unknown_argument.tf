# misspelt argument
# summary: Unsupported argument
# at: regoin = "eu-west-1"

provider "immutable" {
  regoin = "eu-west-1"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
