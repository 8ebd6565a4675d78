# max_retries above 100
# summary: Value Out Of Range
# at: max_retries = 1000

provider "immutable" {
  max_retries = 1000
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
