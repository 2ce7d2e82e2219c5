# Writes quadrants-cmyk.jpg: a 64x32 CMYK JPEG (Adobe APP14 marker, as
# Photoshop and Pillow write it) of the Quadrants pattern: red top left,
# green top right, blue bottom left, white bottom right. Go cannot encode
# CMYK JPEGs, so this file is made once with Debian's python3-pil and
# committed:  /usr/bin/python3 internal/testimage/testdata/cmyk.py
import os

from PIL import Image

img = Image.new("RGB", (64, 32))
colors = {(True, True): (255, 0, 0), (False, True): (0, 255, 0),
          (True, False): (0, 0, 255), (False, False): (255, 255, 255)}
for y in range(32):
    for x in range(64):
        img.putpixel((x, y), colors[(x < 32, y < 16)])
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quadrants-cmyk.jpg")
img.convert("CMYK").save(out, "JPEG", quality=95)
