"""Receipt printers: ESC/POS over USB, serial and TCP 9100, and a simulated printer."""
