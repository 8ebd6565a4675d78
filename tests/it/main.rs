mod local_aws;
mod data_ami;
mod plugin;
