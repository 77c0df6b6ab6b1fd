package app

import (
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/logpipe/logpipe/config"
)

// KafkaDialer builds the kafka-go dialer for the configured TLS and SASL;
// nil means plain TCP with kafka-go's defaults.
func KafkaDialer(k config.Kafka) (*kafka.Dialer, error) {
	tlsCfg, err := k.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("config: kafka.%w", err)
	}
	var mech sasl.Mechanism
	switch k.SASL.Mechanism {
	case "":
	case "plain":
		mech = plain.Mechanism{Username: k.SASL.Username, Password: k.SASL.Password}
	case "scram-sha-256", "scram-sha-512":
		algo := scram.SHA256
		if k.SASL.Mechanism == "scram-sha-512" {
			algo = scram.SHA512
		}
		if mech, err = scram.Mechanism(algo, k.SASL.Username, k.SASL.Password); err != nil {
			return nil, fmt.Errorf("config: kafka.sasl: %w", err)
		}
	}
	if tlsCfg == nil && mech == nil {
		return nil, nil
	}
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}, nil
}
