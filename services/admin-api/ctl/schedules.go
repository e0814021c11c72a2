package ctl

import (
	"context"
	"flag"
	"fmt"

	"github.com/greentic/events/pkg/bundle"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	"github.com/greentic/events/pkg/schedule"
)

func schedulesCommand() *command {
	return &command{
		name: "schedules", summary: "manage ad-hoc schedules (cron, interval, one-shot) of tenants",
		subs: []*command{
			{name: "list", summary: "list schedules", setup: schedulesList},
			{name: "get", args: "TENANT NAME", summary: "show a schedule", minArgs: 2, maxArgs: 2, setup: func(*flag.FlagSet) runFunc { return schedulesGet }},
			{name: "create", summary: "create a schedule from a YAML file (the JSON names of a bundle's schedule, with tenant)", setup: schedulesCreate},
			{name: "pause", args: "TENANT NAME", summary: "stop a schedule from firing", minArgs: 2, maxArgs: 2, setup: func(*flag.FlagSet) runFunc { return schedulesPause }},
			{name: "resume", args: "TENANT NAME", summary: "let a paused schedule fire again", minArgs: 2, maxArgs: 2, setup: func(*flag.FlagSet) runFunc { return schedulesResume }},
			{name: "delete", args: "TENANT NAME", summary: "delete a schedule", minArgs: 2, maxArgs: 2, setup: schedulesDelete},
		},
	}
}

func schedulesList(fs *flag.FlagSet) runFunc {
	var tenantID string
	fs.StringVar(&tenantID, "tenant", "", "only this tenant's schedules (default: every tenant the token may see)")
	return func(ctx context.Context, c *cli, _ []string) error {
		all, err := listAll(func(tok string) ([]*adminv1.Schedule, string, error) {
			res, err := c.schedules.ListSchedules(ctx, &adminv1.ListSchedulesRequest{Tenant: tenantID, PageToken: tok})
			return res.GetSchedules(), res.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		return c.printSchedules(all)
	}
}

// when is a schedule's cron spec, or its one-shot time.
func when(s *adminv1.Schedule) string {
	if s.GetCron() != "" {
		return s.GetCron()
	}
	return "at " + formatTime(s.GetAt())
}

func scheduleStatus(s *adminv1.Schedule) string {
	if s.GetPaused() {
		return "paused"
	}
	return "active"
}

func (c *cli) printSchedules(ss []*adminv1.Schedule) error {
	if c.jsonOut() {
		return printProtoList(c, ss, "payload")
	}
	t := c.table("TENANT", "NAME", "WHEN", "TIMEZONE", "EVENT TYPE", "STATUS", "REVISION")
	for _, s := range ss {
		t.row(s.GetTenant(), s.GetName(), when(s), orDefault(s.GetTimezone(), "UTC"), orDefault(s.GetEventType(), schedule.DefaultEventType), scheduleStatus(s), s.GetRevision())
	}
	return t.flush()
}

func schedulesGet(ctx context.Context, c *cli, args []string) error {
	res, err := c.schedules.GetSchedule(ctx, &adminv1.GetScheduleRequest{Tenant: args[0], Name: args[1]})
	if err != nil {
		return err
	}
	s := res.GetSchedule()
	if c.jsonOut() {
		return c.printProto(s, "payload")
	}
	d := c.details()
	d.add("tenant", s.GetTenant())
	d.add("name", s.GetName())
	d.add("when", when(s))
	d.add("timezone", orDefault(s.GetTimezone(), "UTC"))
	d.add("event type", orDefault(s.GetEventType(), schedule.DefaultEventType))
	d.add("payload", orDefault(string(s.GetPayload()), "{}"))
	d.add("missed", orDefault(s.GetMissed(), schedule.MissedFireOnce))
	d.add("status", scheduleStatus(s))
	d.add("revision", s.GetRevision())
	d.add("updated", formatTime(s.GetUpdateTime()))
	return d.flush()
}

func schedulesCreate(fs *flag.FlagSet) runFunc {
	var file, tenantID string
	fs.StringVar(&file, "f", "", "the schedule as YAML (required)")
	fs.StringVar(&tenantID, "tenant", "", "tenant of the schedule when the file names none")
	return func(ctx context.Context, c *cli, _ []string) error {
		doc, err := readFile("f", file)
		if err != nil {
			return err
		}
		var s schedule.Schedule
		if err := bundle.DecodeYAML(doc, &s); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := defaultTenant(&s.Tenant, tenantID); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		sp, err := scheduleProto(s)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		res, err := c.schedules.CreateSchedule(ctx, &adminv1.CreateScheduleRequest{Schedule: sp})
		if err != nil {
			return err
		}
		return c.printSchedules([]*adminv1.Schedule{res.GetSchedule()})
	}
}

func schedulesPause(ctx context.Context, c *cli, args []string) error {
	res, err := c.schedules.PauseSchedule(ctx, &adminv1.PauseScheduleRequest{Tenant: args[0], Name: args[1]})
	if err != nil {
		return err
	}
	return c.printSchedules([]*adminv1.Schedule{res.GetSchedule()})
}

func schedulesResume(ctx context.Context, c *cli, args []string) error {
	res, err := c.schedules.ResumeSchedule(ctx, &adminv1.ResumeScheduleRequest{Tenant: args[0], Name: args[1]})
	if err != nil {
		return err
	}
	return c.printSchedules([]*adminv1.Schedule{res.GetSchedule()})
}

func schedulesDelete(fs *flag.FlagSet) runFunc {
	var revision uint64
	fs.Uint64Var(&revision, "revision", 0, "delete the schedule only if it is still at this revision")
	return func(ctx context.Context, c *cli, args []string) error {
		res, err := c.schedules.DeleteSchedule(ctx, &adminv1.DeleteScheduleRequest{Tenant: args[0], Name: args[1], Revision: revision})
		if err != nil {
			return err
		}
		return c.done(res, "schedule %s/%s deleted", args[0], args[1])
	}
}
