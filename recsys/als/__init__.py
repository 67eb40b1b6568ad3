"""ALS maths every layer shares: batch trains the factors; the speed layer and serving fold events into them."""
