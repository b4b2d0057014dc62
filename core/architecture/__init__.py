"""What a network is: layer specs, the builder, receptive fields, the notation, the nine steps and the challenge."""
