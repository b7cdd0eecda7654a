"""Render: executes plans. `photo` renders photo variants with Pillow."""
