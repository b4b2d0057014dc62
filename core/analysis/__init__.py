"""Looking inside a trained network: predictions, feature maps, preprocessing a drawn digit, export."""
