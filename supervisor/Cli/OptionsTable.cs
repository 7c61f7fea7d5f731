using System.Text;
using Supervisor.Configuration;

namespace Supervisor.Cli;

/// <summary>
/// The README's option table, made from the same declarations as <c>--help</c> (<c>supervisor --help-markdown</c>).
/// A unit test keeps the README's copy equal to it.
/// </summary>
internal static class OptionsTable
{
    public static string Markdown()
    {
        var table = new StringBuilder();
        table.AppendLine("| option | config key | default | what it does |");
        table.AppendLine("|---|---|---|---|");
        foreach (var section in Settings.All.GroupBy(setting => setting.Section))
        {
            table.AppendLine($"| **{section.Key}** | | | |");
            foreach (var setting in section)
            {
                var flags = string.Join(", ", setting.Flags.OrderBy(flag => flag.Length).Select(flag => $"`{flag}{(setting.Meta.Length > 0 ? " " + setting.Meta : "")}`"));
                var key = setting.InConfigFile
                    ? string.Join(" ", setting.KeyAliases.Prepend(setting.Key).Select(name => $"`{name}`"))
                    : "(command line, `SUPERVISOR_CONFIG`)";
                var origin = setting.DefaultOrigin is null ? "" : $" ({setting.DefaultOrigin})";
                var restart = setting.OnReload == ReloadEffect.NeedsRestart ? " *Needs a restart to change.*" : "";
                table.AppendLine($"| {flags} | {key} | `{Escape(setting.DefaultText)}`{Escape(origin)} | {Escape(setting.Description)}{restart} |");
            }
        }
        return table.ToString();
    }

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
