using System.Globalization;
using System.Text;
using Supervisor.Control;

namespace Supervisor.Cli;

/// <summary><c>supervisor status</c> for people: one line for the supervisor, one row per worker process.</summary>
internal static class StatusReport
{
    private static readonly string[] Columns = ["SLOT", "PID", "GEN", "STATE", "AGE", "REQUESTS", "IN FLIGHT", "RSS", "DETAIL"];

    public static string Write(PoolStatusReply status)
    {
        var serving = status.Pool.Count(w => w.State is "serving" or "recycling" && w.Generation == status.ServingGeneration);
        var text = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"supervisor {status.Pid} ({status.Version}), up {Age(status.Now - status.StartedAt)}: ")
            .Append(CultureInfo.InvariantCulture, $"{serving}/{status.Workers} workers serving, generation {status.ServingGeneration}; ")
            .Append(CultureInfo.InvariantCulture, $"reload: {status.Reload}; {status.InFlight} requests in flight, {status.Queued} queued\n");
        var rows = status.Pool.Select(w => new[]
        {
            w.Slot.ToString(CultureInfo.InvariantCulture),
            w.Pid.ToString(CultureInfo.InvariantCulture),
            w.Generation.ToString(CultureInfo.InvariantCulture),
            w.State,
            Age(status.Now - w.StartedAt),
            w.Requests.ToString(CultureInfo.InvariantCulture),
            w.InFlight.ToString(CultureInfo.InvariantCulture),
            w.ResidentBytes is { } bytes ? $"{bytes / (1024.0 * 1024):0.0} MiB" : "-",
            w.Detail ?? "",
        }).ToList();
        var widths = Columns.Select((column, i) => rows.Select(row => row[i].Length).Prepend(column.Length).Max()).ToArray();
        foreach (var row in rows.Prepend(Columns))
        {
            text.Append(string.Join("  ", row.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>2d 3h, 3h 4m, 4m 5s, 5s: the two largest units, as ps and systemctl show ages.</summary>
    public static string Age(TimeSpan age) =>
        age.TotalDays >= 1 ? $"{(int)age.TotalDays}d {age.Hours}h"
        : age.TotalHours >= 1 ? $"{(int)age.TotalHours}h {age.Minutes}m"
        : age.TotalMinutes >= 1 ? $"{(int)age.TotalMinutes}m {age.Seconds}s"
        : $"{Math.Max(0, (int)age.TotalSeconds)}s";
}
