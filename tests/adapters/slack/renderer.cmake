# The Slack Block Kit renderer against golden files (included from this folder's CMakeLists.txt).
# Regenerate the goldens after an intended change: RUNBOT_UPDATE_GOLDEN=1 ctest -R SlackRenderer
runbot_test(slack_renderer_tests LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/renderer_test.cpp
  DEPS runbot_slack runbot_announcer_cases)
target_compile_definitions(slack_renderer_tests PRIVATE
  RUNBOT_SLACK_GOLDEN_DIR="${CMAKE_CURRENT_LIST_DIR}/golden")
