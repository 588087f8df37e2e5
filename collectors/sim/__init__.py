"""Plant simulators: realistic industrial load served over real protocols on loopback."""
