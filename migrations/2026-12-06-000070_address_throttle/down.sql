DROP TABLE address_throttle;
