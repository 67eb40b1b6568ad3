"""Shop data sources (synthetic generator and public-dataset loaders) as pandas frames matching the contracts."""
