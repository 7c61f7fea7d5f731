using System.Text.RegularExpressions;

namespace Supervisor.Tests.Infrastructure;

/// <summary>Reads samples from the Prometheus text that /metrics serves.</summary>
internal static class PrometheusText
{
    /// <summary>The sum of a metric's samples whose labels contain <paramref name="label"/> ("" for all).</summary>
    public static double Sample(string metrics, string name, string label) =>
        Regex.Matches(metrics, $@"(?m)^{name}(\{{.*\}})? (\S+)$")
            .Where(match => match.Groups[1].Value.Contains(label, StringComparison.Ordinal))
            .Sum(match => double.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
}
