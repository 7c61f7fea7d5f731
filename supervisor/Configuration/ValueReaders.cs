using System.Globalization;

namespace Supervisor.Configuration;

/// <summary>
/// Reads the text of one setting into its value, the same way from every source. Each failure says what
/// the value must be and quotes what was given; the caller adds where it came from.
/// </summary>
internal static class ValueReaders
{
    public static Func<IReadOnlyList<string>, int> WholeNumber(int min, int max = int.MaxValue, string? zeroMeans = null)
    {
        var read = Count(min, max, zeroMeans);
        return values => (int)read(values);
    }

    /// <summary>A whole number that may exceed 2^31, such as a byte count.</summary>
    public static Func<IReadOnlyList<string>, long> Count(long min, long max = long.MaxValue, string? zeroMeans = null) => values =>
    {
        var text = Single(values);
        if (!long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < min || number > max)
        {
            var range = max is int.MaxValue or long.MaxValue ? $"{min} or more" : $"from {min} to {max}";
            var zero = zeroMeans is null ? "" : $"; 0 {zeroMeans}";
            throw new SettingValueException($"must be a whole number, {range}{zero} (got '{text}')");
        }
        return number;
    };

    /// <summary>Whole seconds, as Gunicorn's timeouts are; <paramref name="zeroMeans"/> names what 0 does, when 0 is allowed.</summary>
    public static Func<IReadOnlyList<string>, TimeSpan> Seconds(string? zeroMeans = null)
    {
        var read = WholeNumber(zeroMeans is null ? 1 : 0, zeroMeans: zeroMeans);
        return values => TimeSpan.FromSeconds(read(values));
    }

    public static bool Switch(IReadOnlyList<string> values) => Single(values).Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "on" or "1" => true,
        "false" or "no" or "off" or "0" => false,
        var other => throw new SettingValueException($"must be true or false (got '{other}')"),
    };

    public static Func<IReadOnlyList<string>, TEnum> Choice<TEnum>(params (string Name, TEnum Value)[] choices) => values =>
    {
        var text = Single(values).Trim();
        foreach (var (name, value) in choices)
        {
            if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }
        throw new SettingValueException($"must be one of {string.Join(", ", choices.Select(c => c.Name))} (got '{text}')");
    };

    /// <summary>A path, made absolute against the current directory (the one the supervisor was started in).</summary>
    public static string FullPath(IReadOnlyList<string> values)
    {
        var text = Single(values);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new SettingValueException("must be a path (got an empty value)");
        }
        return Path.GetFullPath(text);
    }

    public static string ExistingDirectory(IReadOnlyList<string> values)
    {
        var path = FullPath(values);
        return Directory.Exists(path) ? path : throw new SettingValueException($"'{Single(values)}' is not a directory; give an existing folder");
    }

    /// <summary>A log destination: <c>-</c> for the standard stream, else a file path made absolute.</summary>
    public static string LogDestination(IReadOnlyList<string> values) =>
        Single(values).Trim() == "-" ? "-" : FullPath(values);

    public static string Text(IReadOnlyList<string> values) => Single(values);

    /// <summary>Repeatable values where one value may also list several, comma-separated: <c>a,b</c> as well as <c>a</c> <c>b</c>.</summary>
    /// <summary>A value parsed by a type the worker-host shares, which says what is wrong in a <see cref="FormatException"/>.</summary>
    public static T Parsed<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (FormatException exception)
        {
            throw new SettingValueException(exception.Message);
        }
    }

    public static IEnumerable<string> CommaSeparated(IReadOnlyList<string> values) =>
        values.SelectMany(value => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    public static IReadOnlyDictionary<string, string> EnvironmentPairs(IReadOnlyList<string> values)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in values)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new SettingValueException($"must be KEY=VALUE (got '{pair}')");
            }
            environment[pair[..equals]] = pair[(equals + 1)..];
        }
        return environment;
    }

    private static string Single(IReadOnlyList<string> values) => values.Count switch
    {
        1 => values[0],
        0 => throw new SettingValueException("needs a value"),
        _ => throw new SettingValueException($"takes one value (got {values.Count}: {string.Join(", ", values.Select(v => $"'{v}'"))})"),
    };
}
