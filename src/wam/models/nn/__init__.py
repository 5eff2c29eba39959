"""Neural-network building blocks of the World Action Model."""
