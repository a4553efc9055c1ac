"""The catalog (公共数据资源登记): asset metadata, domains, one data one source, search, DCAT-AP export."""
