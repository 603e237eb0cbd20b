package risk

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Sample reads signals given by name, as policies see them (a dry run,
// `realmgate rules test`): {"country": "US", "new_country": true}. Names
// not given keep their zero value; the risk level is assessed from the
// signals unless "risk" is given. An unknown name or a value of the wrong
// type is an error naming it.
func Sample(m map[string]any) (Signals, error) {
	var sig Signals
	str := func(k string, v any, dst *string) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("signals.%s: want a string", k)
		}
		*dst = s
		return nil
	}
	boolean := func(k string, v any, dst *bool) error {
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("signals.%s: want true or false", k)
		}
		*dst = b
		return nil
	}
	number := func(k string, v any, max float64) (float64, error) {
		var f float64
		switch n := v.(type) {
		case float64:
			f = n
		case int:
			f = float64(n)
		case int64:
			f = float64(n)
		default:
			return 0, fmt.Errorf("signals.%s: want a number", k)
		}
		if f < 0 || f > max || math.IsNaN(f) {
			return 0, fmt.Errorf("signals.%s: want 0 to %g", k, max)
		}
		return f, nil
	}
	list := func(k string, v any, dst *[]string) error {
		l, ok := v.([]any)
		if !ok {
			if ss, ok := v.([]string); ok {
				*dst = ss
				return nil
			}
			return fmt.Errorf("signals.%s: want a list of strings", k)
		}
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("signals.%s: want a list of strings", k)
			}
			*dst = append(*dst, s)
		}
		return nil
	}
	levelGiven := false
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		var f float64
		switch k {
		case "ip":
			err = str(k, v, &sig.IP)
		case "country":
			err = str(k, v, &sig.Country)
		case "network_org":
			err = str(k, v, &sig.Org)
		case "app":
			err = str(k, v, &sig.App)
		case "asn":
			f, err = number(k, v, math.MaxUint32)
			sig.ASN = uint32(f)
		case "failures":
			f, err = number(k, v, 1e6)
			sig.Failures = int(f)
		case "hour":
			f, err = number(k, v, 23)
			sig.Hour = int(f)
		case "weekday":
			f, err = number(k, v, 6)
			sig.Weekday = int(f)
		case "travel_kmh":
			sig.TravelKmh, err = number(k, v, 1e9)
		case "locations":
			err = list(k, v, &sig.Locations)
		case "groups":
			err = list(k, v, &sig.Groups)
		case "acrs":
			err = list(k, v, &sig.ACRS)
		case "trusted_location":
			err = boolean(k, v, &sig.TrustedLocation)
		case "denied_ip":
			err = boolean(k, v, &sig.DeniedIP)
		case "anonymizer":
			err = boolean(k, v, &sig.Anonymizer)
		case "first_sign_in":
			err = boolean(k, v, &sig.FirstSignIn)
		case "new_country":
			err = boolean(k, v, &sig.NewCountry)
		case "new_network":
			err = boolean(k, v, &sig.NewNetwork)
		case "impossible_travel":
			err = boolean(k, v, &sig.ImpossibleTravel)
		case "mfa":
			err = boolean(k, v, &sig.MFA)
		case "compromised":
			err = boolean(k, v, &sig.Compromised)
		case "risk":
			var s string
			if err = str(k, v, &s); err == nil {
				var ok bool
				if sig.Level, ok = ParseLevel(s); !ok {
					err = fmt.Errorf("signals.risk: want low, medium or high")
				}
				levelGiven = true
			}
		default:
			err = fmt.Errorf("signals.%s: unknown signal (known: %s)", k, strings.Join(SignalNames(), ", "))
		}
		if err != nil {
			return Signals{}, err
		}
	}
	if !levelGiven {
		(&Sensor{}).Assess(&sig)
	}
	return sig, nil
}

// SignalNames lists the signals policies see.
func SignalNames() []string {
	names := make([]string, 0, 24)
	for k := range (&Signals{}).Map() {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
