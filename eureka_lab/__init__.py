"""eureka-lab."""
