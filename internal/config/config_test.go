package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:8080" || !c.Embedded() || !c.EmbeddedRedis() || c.SLA != time.Hour || c.GiveUp != time.Hour ||
				c.PingFlush <= 0 || c.BatchWindow <= 0 || c.BatchUrgency != 1 || c.StaleAfter <= 0 || c.OfferTimeout <= 0 {
				t.Errorf("unexpected defaults: %+v", c)
			}
		}},
		{name: "servers", env: []string{"DATABASE_URL=postgres://u@h/db", "REDIS_URL=redis://127.0.0.1:6379/2", "ONSITE_ADDR=:9000"}, check: func(t *testing.T, c Config) {
			if c.Embedded() || c.EmbeddedRedis() || c.Addr != ":9000" {
				t.Errorf("unexpected: %+v", c)
			}
		}},
		{name: "give up follows sla", env: []string{"ONSITE_SLA=90m"}, check: func(t *testing.T, c Config) {
			if c.GiveUp != 90*time.Minute {
				t.Errorf("give up = %v", c.GiveUp)
			}
		}},
		{name: "time zone default", check: func(t *testing.T, c Config) {
			if c.TimeZone == nil || c.TimeZone.String() != "Europe/Zurich" {
				t.Errorf("time zone = %v", c.TimeZone)
			}
		}},
		{name: "time zone", env: []string{"ONSITE_TIME_ZONE=Europe/Rome"}, check: func(t *testing.T, c Config) {
			if c.TimeZone.String() != "Europe/Rome" {
				t.Errorf("time zone = %v", c.TimeZone)
			}
		}},
		{name: "field exceptions defaults", check: func(t *testing.T, c Config) {
			if c.ArrivalRadiusM != 250 || c.NoShowWait != 10*time.Minute || c.ConfirmTTL != 24*time.Hour {
				t.Errorf("radius %v, no-show wait %v, confirm ttl %v", c.ArrivalRadiusM, c.NoShowWait, c.ConfirmTTL)
			}
		}},
		{name: "field exceptions", env: []string{"ONSITE_ARRIVAL_RADIUS=400", "ONSITE_NO_SHOW_WAIT=15m", "ONSITE_CONFIRM_TTL=2h"}, check: func(t *testing.T, c Config) {
			if c.ArrivalRadiusM != 400 || c.NoShowWait != 15*time.Minute || c.ConfirmTTL != 2*time.Hour {
				t.Errorf("radius %v, no-show wait %v, confirm ttl %v", c.ArrivalRadiusM, c.NoShowWait, c.ConfirmTTL)
			}
		}},
		{name: "bad arrival radius", env: []string{"ONSITE_ARRIVAL_RADIUS=2km"}, wantErr: "ONSITE_ARRIVAL_RADIUS"},
		{name: "arrival radius too small", env: []string{"ONSITE_ARRIVAL_RADIUS=0"}, wantErr: "ONSITE_ARRIVAL_RADIUS"},
		{name: "bad no-show wait", env: []string{"ONSITE_NO_SHOW_WAIT=1s"}, wantErr: "ONSITE_NO_SHOW_WAIT"},
		{name: "bad confirm ttl", env: []string{"ONSITE_CONFIRM_TTL=forever"}, wantErr: "ONSITE_CONFIRM_TTL"},
		{name: "bad time zone", env: []string{"ONSITE_TIME_ZONE=Europe/Zurch"}, wantErr: "ONSITE_TIME_ZONE"},
		{name: "local time zone", env: []string{"ONSITE_TIME_ZONE=Local"}, wantErr: "ONSITE_TIME_ZONE"},
		{name: "unknown setting", env: []string{"ONSITE_ADRR=x"}, wantErr: "ONSITE_ADRR"},
		{name: "bad addr", env: []string{"ONSITE_ADDR=8080"}, wantErr: "ONSITE_ADDR"},
		{name: "bad database", env: []string{"DATABASE_URL=mysql://x"}, wantErr: "DATABASE_URL"},
		{name: "bad redis", env: []string{"REDIS_URL=localhost"}, wantErr: "REDIS_URL"},
		{name: "redis cluster", env: []string{"REDIS_URL=redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002?dial_timeout=2s"}, check: func(t *testing.T, c Config) {
			if c.EmbeddedRedis() || !c.RedisCluster() {
				t.Errorf("cluster: %+v", c)
			}
			single, cluster, err := ParseRedisURL(c.RedisURL)
			if err != nil || single != nil || cluster == nil {
				t.Fatalf("parse: %v %v %v", single, cluster, err)
			}
			if strings.Join(cluster.Addrs, ",") != "10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002" || cluster.Password != "pw" || cluster.DialTimeout != 2*time.Second {
				t.Errorf("cluster options: %+v", cluster)
			}
		}},
		{name: "redis single is not a cluster", env: []string{"REDIS_URL=redis://127.0.0.1:6379/2"}, check: func(t *testing.T, c Config) {
			single, cluster, err := ParseRedisURL(c.RedisURL)
			if c.RedisCluster() || err != nil || cluster != nil || single.DB != 2 {
				t.Errorf("single: %v %v %v", single, cluster, err)
			}
		}},
		{name: "redis cluster with a db", env: []string{"REDIS_URL=redis+cluster://h1:7000,h2:7001/3"}, wantErr: "REDIS_URL"},
		{name: "redis cluster bad node", env: []string{"REDIS_URL=redis+cluster://h1:7000,h2"}, wantErr: "REDIS_URL"},
		{name: "redis several hosts without cluster", env: []string{"REDIS_URL=redis://h1:7000,h2:7001"}, wantErr: "REDIS_URL"},
		{name: "redis unknown scheme", env: []string{"REDIS_URL=memcache://h1:11211"}, wantErr: "REDIS_URL"},
		{name: "short secret", env: []string{"ONSITE_JWT_SECRET=abc"}, wantErr: "ONSITE_JWT_SECRET"},
		{name: "bad duration", env: []string{"ONSITE_OFFER_TIMEOUT=soon"}, wantErr: "ONSITE_OFFER_TIMEOUT"},
		{name: "bad strategy", env: []string{"ONSITE_OFFER_STRATEGY=random"}, wantErr: "ONSITE_OFFER_STRATEGY"},
		{name: "bad level", env: []string{"ONSITE_LOG_LEVEL=loud"}, wantErr: "ONSITE_LOG_LEVEL"},
		{name: "other variables ignored", env: []string{"HOME=/root", "PATH=/bin"}},
		{name: "twilio", env: []string{"TWILIO_ACCOUNT_SID=AC1", "TWILIO_AUTH_TOKEN=t", "TWILIO_FROM=+41445550000"}, check: func(t *testing.T, c Config) {
			if !c.Twilio() || c.TwilioFrom != "+41445550000" {
				t.Errorf("twilio: %+v", c)
			}
		}},
		{name: "twilio sid without token", env: []string{"TWILIO_ACCOUNT_SID=AC1"}, wantErr: "TWILIO_AUTH_TOKEN"},
		{name: "twilio without sender", env: []string{"TWILIO_ACCOUNT_SID=AC1", "TWILIO_AUTH_TOKEN=t"}, wantErr: "TWILIO_FROM"},
		{name: "bad twilio sid", env: []string{"TWILIO_ACCOUNT_SID=XX1"}, wantErr: "TWILIO_ACCOUNT_SID"},
		{name: "twilio api url", env: []string{"TWILIO_API_URL=http://127.0.0.1:8089/twilio/"}, check: func(t *testing.T, c Config) {
			if c.TwilioAPIURL != "http://127.0.0.1:8089/twilio" {
				t.Errorf("twilio api url = %q", c.TwilioAPIURL)
			}
		}},
		{name: "twilio api url default", check: func(t *testing.T, c Config) {
			if c.TwilioAPIURL != "" {
				t.Errorf("twilio api url = %q, want empty (api.twilio.com)", c.TwilioAPIURL)
			}
		}},
		{name: "sms defaults", check: func(t *testing.T, c Config) {
			if c.SMSCountries.String() != "CH, LI, DE, FR, IT, AT" || c.SMSPerPhoneDay != 20 || c.SMSPerAccountDay != 50 {
				t.Errorf("sms defaults: %v %d %d", c.SMSCountries, c.SMSPerPhoneDay, c.SMSPerAccountDay)
			}
		}},
		{name: "sms settings", env: []string{"ONSITE_SMS_COUNTRIES=ch,+44", "ONSITE_SMS_PER_PHONE_DAY=5", "ONSITE_SMS_PER_ACCOUNT_DAY=0"}, check: func(t *testing.T, c Config) {
			if !c.SMSCountries.Allows("+447700900123") || c.SMSCountries.Allows("+4915112345678") || c.SMSPerPhoneDay != 5 || c.SMSPerAccountDay != 0 {
				t.Errorf("sms settings: %v %d %d", c.SMSCountries, c.SMSPerPhoneDay, c.SMSPerAccountDay)
			}
		}},
		{name: "bad sms country", env: []string{"ONSITE_SMS_COUNTRIES=CH,Narnia"}, wantErr: "ONSITE_SMS_COUNTRIES"},
		{name: "bad sms cap", env: []string{"ONSITE_SMS_PER_PHONE_DAY=-1"}, wantErr: "ONSITE_SMS_PER_PHONE_DAY"},
		{name: "twilio api url not a url", env: []string{"TWILIO_API_URL=api.twilio.test"}, wantErr: "TWILIO_API_URL"},
		{name: "twilio api url with a query", env: []string{"TWILIO_API_URL=https://proxy.test/?x=1"}, wantErr: "TWILIO_API_URL"},
		{name: "arrival radius", env: []string{"ONSITE_ARRIVAL_RADIUS=400m"}, check: func(t *testing.T, c Config) {
			if c.ArrivalRadiusM != 400 || Default().ArrivalRadiusM != 250 {
				t.Fatalf("arrival radius %v, default %v", c.ArrivalRadiusM, Default().ArrivalRadiusM)
			}
		}},
		{name: "bad arrival radius", env: []string{"ONSITE_ARRIVAL_RADIUS=2km"}, wantErr: "ONSITE_ARRIVAL_RADIUS"},
		{name: "service areas", env: []string{"ONSITE_SERVICE_AREAS=zurich=871f8ed95ffffff;winterthur=871f8ed1dffffff,871f8ed1cffffff"}, check: func(t *testing.T, c Config) {
			if len(c.ServiceAreas) != 2 || c.ServiceAreas[1].Name != "winterthur" || len(c.ServiceAreas[1].Cells) != 2 {
				t.Fatalf("service areas %+v", c.ServiceAreas)
			}
		}},
		{name: "bad service area", env: []string{"ONSITE_SERVICE_AREAS=zurich=nowhere"}, wantErr: "ONSITE_SERVICE_AREAS"},
		{name: "bad batch window", env: []string{"ONSITE_BATCH_WINDOW=1ms"}, wantErr: "ONSITE_BATCH_WINDOW"},
		{name: "batch urgency", env: []string{"ONSITE_BATCH_URGENCY=0"}, check: func(t *testing.T, c Config) {
			if c.BatchUrgency != 0 {
				t.Errorf("batch urgency = %v", c.BatchUrgency)
			}
		}},
		{name: "bad batch urgency", env: []string{"ONSITE_BATCH_URGENCY=-1"}, wantErr: "ONSITE_BATCH_URGENCY"},
		{name: "batch urgency not a number", env: []string{"ONSITE_BATCH_URGENCY=NaN"}, wantErr: "ONSITE_BATCH_URGENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
