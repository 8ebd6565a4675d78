mod data_ami;
mod local_aws;
mod plugin;
