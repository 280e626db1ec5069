"""Stand-in for Pillow, enough for aiges_demo stream_test (Image.open of the test PNG)."""
