"""Shop data as pandas frames matching the contracts: a synthetic generator and public-dataset loaders."""
